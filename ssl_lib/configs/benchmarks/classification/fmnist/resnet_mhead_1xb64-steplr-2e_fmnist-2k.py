# The linear stage's default, trimmed to about a minute on 2 CPU cores: 2 epochs on a class-balanced 2,000 of
# the train images. The full setting is one parameter away: config=benchmarks/classification/fmnist/
# resnet_mhead_1xb64-steplr-90e_fmnist.py (90 epochs on the whole split), or the seed's own recipes under
# imagenet/, places205/ and inaturalist2018/.
_base_ = 'resnet_mhead_1xb64-steplr-90e_fmnist.py'
data = dict(train_limit=2000)
lr_config = dict(policy='step', step=[1])
runner = dict(max_epochs=2)
evaluation = dict(interval=0)
