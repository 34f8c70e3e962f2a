"""Training recipes of the named models, one module per dataset; importing them registers the models
in :data:`diffcf.zoo.REGISTRY`. Every recipe trains through :func:`diffcf.training.fit`."""

from diffcf.recipes import celeba, helix, mnist, shapes  # noqa: F401
