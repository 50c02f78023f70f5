"""Analysis of a trained model: per class, calibration, corruptions, Grad-CAM, figures, summary."""
