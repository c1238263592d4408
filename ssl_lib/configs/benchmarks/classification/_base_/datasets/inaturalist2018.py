# The seed's iNaturalist 2018 linear-evaluation data (8142 classes; prep: the meta/train.txt and val.txt list
# files over data/iNaturalist2018/train_val2018). The pipelines are ImageNet's.
_base_ = 'imagenet.py'
