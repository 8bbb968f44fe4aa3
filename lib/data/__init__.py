"""Data: the synthetic PAIR-layout generator, crops, augmentation, targets and the Dataset."""
