"""Training: phases and loop, compile, optimizers and schedules, callbacks and checkpoints."""
