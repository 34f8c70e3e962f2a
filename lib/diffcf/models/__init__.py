"""Models: the home of the generators and of the classifiers they explain.

Generators ``g`` (``encode(x) -> z``, ``decode(z) -> x``, see :mod:`diffcf.generative`):

- :mod:`diffcf.models.realnvp`: the toy RealNVP of §IV-A (affine couplings, exact inverse,
  log-det), for the helix;
- :mod:`diffcf.models.multiscale`: the multi-scale Glow for images (actnorm, invertible 1×1
  convolution, affine coupling, learned split prior; any number of scales), for MNIST, the shapes
  and CelebA (5-bit faces);
- :mod:`diffcf.models.vae` and :mod:`diffcf.models.gan`: the *approximately* diffeomorphic
  generators of notebook 07, the conv VAE (``encode`` = posterior mean) and the dcGAN (``encode`` =
  GAN inversion, :mod:`diffcf.inversion`), with the learned encoder that starts the inversion; for
  MNIST and, at ``3×32×32``, CelebA;
- :mod:`diffcf.models.stylegan`: a small style-based GAN (mapping network, modulated and
  demodulated convolutions) for CelebA, whose latent is the flattened ``W+``, with an encoder to it.

Classifiers and oracles:

- :mod:`diffcf.models.classifiers`: the models under explanation, ``f`` returning logits: the helix
  MLP, the MNIST and CelebA CNNs of the paper's code (the latter also as the 40-attribute oracle),
  the small CNN of the shapes;
- :mod:`diffcf.models.oracles`: the models that judge a counterfactual: the SVM oracles and the
  per-class autoencoders of IM1.

Regressors: :mod:`diffcf.models.unet`, the U-Nets of the Mall crowd count (notebook 06), the
counting model ``f`` (density map and count head) and the oracle built differently.

Checkpoints are state dicts, so moving a class between modules does not break them; the named
models are built and loaded by :mod:`diffcf.zoo` (recipes in :mod:`diffcf.recipes`).
"""
