# Semi-supervised fine-tuning sized for two CPU cores (the default of the semi stage and of `make run`):
# the seed's protocol (imagenet_{1,10}percent: SGD momentum 0.9, head lr = lr x head_lr_mult, step
# schedule with gamma 0.2 at 60% and 80% of the epochs, RandomResizedCrop + flip) on the default
# Fashion-MNIST (10k train / 2k test: 1% = 10 images a class, 10% = 100), trimmed:
#   - 5 epochs instead of the seed's 20 (milestones [3, 4] for the seed's [12, 16]);
#   - batch 64 instead of 4 x 64 (1% of 10k images is 100: batch 256 would be one step an epoch);
#   - the grid is the seed's whole lr {0.1, 0.01, 0.001} x head lr multiplier {1, 10, 100}.
# The train augmentation crops to the images' size (or the backbone's eval CenterCrop) with scale (0.3, 1),
# as the Fashion-MNIST pretraining recipes do (the seed's 0.08 is for 224 px ImageNet images); the test
# pipeline is the backbone's eval pipeline (backbone.json), as kNN uses.
# The seed's full schedule is one parameter away: --epochs 20 (milestones scale to [12, 16]).
semi = dict(
    fractions=[0.01, 0.1],
    subset_files=None,  # {'0.01': 'meta/train_1percent.txt'}: the labelled images; None: class-balanced, seeded
    lrs=[0.1, 0.01, 0.001],
    head_lr_mults=[1, 10, 100],
    epochs=5,
    milestones=[3, 4],
    gamma=0.2,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=64,
    crop_scale=(0.3, 1.0),
)
