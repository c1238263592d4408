# VICReg (Bardes et al. 2022) on ResNet-50: the expander is 3 linear layers of 8192 with biases, BN and
# ReLU between them and nothing after the last (the authors' `Projector`, mlp "8192-8192-8192").
model = dict(
    type='VICReg',
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=3,
        out_indices=[4],  # 0: conv-1, x: stage-x
        norm_cfg=dict(type='SyncBN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck',
        in_channels=2048,
        hid_channels=8192,
        out_channels=8192,
        num_layers=3,
        with_bias=True,
        with_last_bias=True,
        with_last_bn=False,
        with_avg_pool=True),
    head=dict(type='VICRegHead', in_channels=8192, sim_coeff=25., std_coeff=25., cov_coeff=1.))
