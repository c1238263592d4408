# The seed's Places205 linear-evaluation data (prep: `data/Places205/meta/train.txt` and `val.txt` list files
# under data/Places205, or train/ + val/ class folders). Its training crop is the seed's: resize to 256,
# centre 256, random 224 and a flip (not RandomResizedCrop).
_base_ = 'imagenet.py'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=256),
    dict(type='RandomCrop', size=224),
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(train=dict(pipeline=train_pipeline))
