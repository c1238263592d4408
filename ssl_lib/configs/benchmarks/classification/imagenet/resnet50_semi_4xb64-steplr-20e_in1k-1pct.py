# The seed's semi-supervised ImageNet 1% benchmark: its nine configs
#   configs/benchmarks/classification/imagenet/imagenet_1percent/
#   resnet50_head{1,10,100}_4xb64-steplr{1e-1,1e-2,1e-3}-20e_in1k-1pct.py
# (one file per setting) as one grid: backbone + ClsHead (global average pool, FC) all fine-tuned,
# SGD momentum 0.9, weight decay 5e-4, batch 4 x 64 (SyncBN: BN over 256, as one batch of 256 here),
# 20 epochs with the lr x 0.2 at epochs 12 and 16; RandomResizedCrop 224 + flip; test: resize 256,
# center crop 224. One seed file is one setting of the grid, e.g.
#   resnet50_head100_4xb64-steplr1e-2-20e_in1k-1pct.py  =  --lrs 0.01 --head-lr-mults 100
# The labelled images are the seed's list file (paths relative to the ImageNet train folder; a
# dataset prepared from train/ and val/ folders names them train/<path>, which matches too).
# Without the file: --cfg-options semi.subset_files=None gives a seeded class-balanced 1% (13 a class).
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224),
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
test_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
semi = dict(
    fractions=[0.01],
    subset_files={'0.01': 'data/imagenet/meta/train_1percent.txt'},
    lrs=[0.1, 0.01, 0.001],
    head_lr_mults=[1, 10, 100],
    epochs=20,
    milestones=[12, 16],
    gamma=0.2,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=256,
)
