# DINO ViT-S/16 on ImageNet-1k, the paper's 100-epoch recipe: 16 x 64 images, 2 global crops of 224 px and
# 6 local ones of 96 px (the ViT resamples its position embedding to a local crop's 6 x 6 patches), AdamW
# lr 5e-4 per 256 images after 10 warm-up epochs, cosine to 1e-6, weight decay 0.04 raised to 0.4 along a
# cosine by iteration (WeightDecayUpdateHook), gradients clipped at 3, the last layer frozen for the first epoch
# (1251 iterations), teacher temperature 0.04 -> 0.07 over 30 epochs, teacher momentum 0.996 -> 1, fp16.
_base_ = [
    '../_base_/models/dino_vit-small-p16.py',
    '../_base_/datasets/imagenet_dino_mcrop-2-6.py',
    '../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(head=dict(num_crops={{_base_.num_crops}}))
data = dict(samples_per_gpu=64)
custom_hooks = [
    dict(type='MomentumUpdateHook', end_momentum=1.),
    dict(type='DINOHook', warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_epochs=30),
    dict(type='WeightDecayUpdateHook', end_weight_decay=0.4),
]
optimizer = dict(
    type='AdamW',
    lr=5e-4 * 1024 / 256,
    weight_decay=0.04,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'pos_embed': dict(weight_decay=0.),
        'cls_token': dict(weight_decay=0.)
    })
optimizer_config = dict(grad_clip=dict(max_norm=3.0), frozen_layers_cfg={'neck.last_layer': 1251})
fp16 = dict(loss_scale='dynamic')
lr_config = dict(policy='CosineAnnealing', by_epoch=False, min_lr=1e-6, warmup='linear', warmup_iters=10,
                 warmup_ratio=1e-4, warmup_by_epoch=True)
runner = dict(max_epochs=100)
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
