# DINO on ResNet-50, the released 100-epoch run's settings (global batch 512): SGD, teacher momentum
# cosine from 0.996 to 1, teacher temperature 0.04 throughout (that run's warm-up is 0 epochs; the
# paper's ViT runs warm 0.04 -> 0.07 over 30), student temperature 0.1, centre momentum 0.9, the last
# layer frozen for the first epoch. It used 8 local crops; this recipe keeps the seed's multi-crop 2-6.
_base_ = [
    '../_base_/models/dino.py',
    '../_base_/datasets/imagenet_dino_mcrop-2-6.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_crops={{_base_.num_crops}}))
data = dict(samples_per_gpu=64)

custom_hooks = [
    dict(type='MomentumUpdateHook', end_momentum=1.),
    dict(type='DINOHook', warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_epochs=0),
]

# SGD at 0.03 per 256 images (0.06 for 512), weight decay 1e-4 except on biases and norms
optimizer = dict(
    type='SGD',
    lr=0.06,
    momentum=0.9,
    weight_decay=1e-4,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'downsample.1': dict(weight_decay=0.),
    })
# DINO clips each parameter's gradient to norm 3; here the seed's global-norm clip at 3. The last
# layer gets no update for the first epoch (1281167 // 512 = 2502 iterations).
optimizer_config = dict(grad_clip=dict(max_norm=3.0), frozen_layers_cfg={'neck.last_layer': 2502})

# 10 epochs of linear warm-up, then a cosine per iteration down to 1e-6
lr_config = dict(
    policy='CosineAnnealing',
    by_epoch=False,
    min_lr=1e-6,
    warmup='linear',
    warmup_iters=10,
    warmup_ratio=1e-4,  # cannot be 0
    warmup_by_epoch=True)

checkpoint_config = dict(interval=10, max_keep_ckpts=3)

runner = dict(type='EpochBasedRunner', max_epochs=100)
