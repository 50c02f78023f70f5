"""ImageNet backbones: the table, weights with an offline fallback, EfficientNet-Lite and its file reader."""
