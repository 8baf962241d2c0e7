"""Scene-state estimation: oracle-labelled frames from scripted chains, training and evaluation of the estimator.

This is composition-root code: the kitchen (envs) provides frames and ground truth, perception's
`SceneEstimator` learns to read the same facts from the senses alone.
"""
