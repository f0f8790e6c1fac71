"""bmprune.report"""
