"""bmprune.evaluation"""
