"""The causal study behind `embodia causal`: intervene on the kitchen, fit an SCM, check its predictions.

The entry module is `study` (collect interventional data in the simulator, fit, compare). `config` holds
`StudyConfig`, `sim` runs the simulated interventions, `analysis` and `stats` compare the fitted model with
held-out data, and `report` renders the result. Generic SCM fitting lives in `causal.fitting`.
"""
