# The seed's semi-supervised ImageNet 10% benchmark: its nine configs
#   configs/benchmarks/classification/imagenet/imagenet_10percent/
#   resnet50_head{1,10,100}_4xb64-steplr{1e-1,1e-2,1e-3}-20e_in1k-10pct.py
# as one grid: the 1% recipe with the 10% list file and the seed's weight decay for 10%, 1e-4.
_base_ = 'resnet50_semi_4xb64-steplr-20e_in1k-1pct.py'
semi = dict(
    fractions=[0.1],
    subset_files={'_delete_': True, '0.1': 'data/imagenet/meta/train_10percent.txt'},
    weight_decay=1e-4,
)
