"""DeepDream on InceptionV3 (ImageNet): weights, feature network, objectives, octaves, tiling."""
