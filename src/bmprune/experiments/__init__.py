"""bmprune.experiments"""
