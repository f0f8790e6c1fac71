"""bmprune.pruning"""
