"""CNN behaviour cloning: the plain image + proprio + task → action-chunk baseline the VLAs are compared with
(issue 18); trained by `reasonact bc train` (`training/bc_trainer.py`), evaluated by `reasonact bc eval`."""
