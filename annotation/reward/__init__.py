"""Reward models: the built-in Bradley-Terry model, its training, and filtering pairs by reward margin."""
