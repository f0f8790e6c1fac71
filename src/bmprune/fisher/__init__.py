"""bmprune.fisher"""
