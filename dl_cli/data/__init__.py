"""Data: built-in and file datasets, splits, preprocessing and augmentation."""
