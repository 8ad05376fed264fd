"""Image generators: clean-room StyleGAN2 / StyleGAN3 and the demo's PPCA model, one interface."""
