# The seed's linear model on the global average pool of a frozen ResNet-50's last stage ("AvgPool").
model = dict(
    type='Classification',
    head=dict(type='ClsHead', with_avg_pool=True, in_channels=2048, num_classes=1000))
