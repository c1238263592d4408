# The semi-supervised default of `make run`: the 5-epoch CPU recipe beside this file cut to 2 epochs
# (lr x 0.2 after the first), so that the whole local pipeline stays within 10 minutes on 2 cores.
# The seed's whole grid is kept. One parameter away: semi_config=<the 5-epoch file> (the stage's own
# default), or semi_epochs=20 for the seed's schedule length (milestones scale to [12, 16]).
_base_ = './resnet18-w16_semi_1xb64-steplr-5e_fmnist.py'
semi = dict(epochs=2, milestones=[1])
