"""Knowledge distillation: student construction, losses, Trainer-based engine, the stage."""
