"""Studies that train and compare whole systems on top of the training room: `ki` (the knowledge-insulation
study, `reasonact vla study`). They stand above `training/` and `vla/`, which they orchestrate."""
