"""Models: normalizing flows, classifiers (and, later, regressors, autoencoders, VAEs, GANs)."""
