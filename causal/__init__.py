"""Structural causal models: specification, do(), counterfactuals, identification, estimation, discovery."""
