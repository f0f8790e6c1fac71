"""bmprune.data"""
