"""Training recipes of the named models, one module per dataset (``approximate``: the VAEs, GANs and GAN
encoders of notebook 07, MNIST and CelebA);
importing them registers the models in :data:`diffcf.zoo.REGISTRY`. Every recipe trains through
:func:`diffcf.training.fit` (the GANs through :func:`~diffcf.training.fit_gan`)."""

from diffcf.recipes import approximate, celeba, chestxray, helix, mall, mnist, shapes  # noqa: F401
