"""Models: ResNet options, necks, InfoNCE, distributed helpers and MoCo on a tiny CPU network."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision
from torch import nn

from ssl_lib.errors import ConfigError
from ssl_lib.models import ContrastiveHead, LinearNeck, MoCoV2Neck, ResNet
from ssl_lib.models.losses import info_nce_from_logits
from ssl_lib.models.utils import (batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather,
                                  revert_sync_batchnorm)
from ssl_lib.registry import ALGORITHMS, build


def tiny_moco_cfg(**overrides) -> dict:
    cfg = dict(
        type="MoCo", queue_len=32, feat_dim=16, momentum=0.99,
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="MoCoV2Neck", in_channels=64, hid_channels=32, out_channels=16),
        head=dict(type="ContrastiveHead", temperature=0.2))
    cfg.update(overrides)
    return cfg


def two_views(batch: int = 8, size: int = 16) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, size, size)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def sgd(model: nn.Module, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_state_dict_loads_strictly_into_torchvision_and_computes_the_same_features(depth):
    torch.manual_seed(0)
    ours = ResNet(depth=depth).eval()
    tv = getattr(torchvision.models, f"resnet{depth}")()
    tv.fc = nn.Identity()
    tv.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tv.eval()(x), ours(x)[0].mean((2, 3)))


def test_resnet_cifar_stem_gives_each_out_index_its_shape_and_channels():
    net = ResNet(depth=18, base_channels=16, stem="cifar", out_indices=(0, 1, 2, 3, 4))
    outs = net(torch.randn(2, 3, 28, 28))
    assert [tuple(o.shape) for o in outs] == [
        (2, 16, 28, 28), (2, 16, 28, 28), (2, 32, 14, 14), (2, 64, 7, 7), (2, 128, 4, 4)]
    assert net.out_channels == (16, 16, 32, 64, 128)
    wide = ResNet(depth=50, base_channels=16)
    assert [wide.feat_channels(i) for i in range(5)] == [16, 64, 128, 256, 512]
    assert ResNet(depth=18, in_channels=1, stem="cifar", base_channels=8, out_indices=(2,))(
        torch.randn(2, 1, 28, 28))[0].shape == (2, 16, 14, 14)


def test_frozen_stages_stop_gradients_and_keep_their_bn_in_eval_mode():
    net = ResNet(depth=18, base_channels=8, stem="cifar", frozen_stages=2).train()
    frozen = [net.conv1, net.bn1, net.layer1, net.layer2]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in (net.layer3, net.layer4) for p in m.parameters())
    assert not net.bn1.training and not net.layer2[1].bn2.training and net.layer3[0].bn1.training
    stats = net.layer1[0].bn1.running_mean.clone()
    net(torch.randn(4, 3, 16, 16))
    torch.testing.assert_close(net.layer1[0].bn1.running_mean, stats)


def test_norm_eval_keeps_every_bn_in_eval_mode_while_training():
    net = ResNet(depth=18, base_channels=8, stem="cifar", norm_eval=True).train()
    assert net.training and not any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_zero_init_residual_zeroes_the_last_bn_of_each_block():
    net = ResNet(depth=50, base_channels=8, zero_init_residual=True)
    assert all(b.bn3.weight.abs().sum() == 0 for layer in (net.layer1, net.layer4) for b in layer)


def test_unknown_norm_type_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="FancyNorm"):
        ResNet(depth=18, norm_cfg=dict(type="FancyNorm"))


def test_syncbn_backbone_reverts_to_bn_with_the_same_state_and_frozen_flags():
    net = ResNet(depth=18, base_channels=8, stem="cifar", norm_cfg=dict(type="SyncBN"), frozen_stages=0)
    assert isinstance(net.bn1, nn.SyncBatchNorm)
    state = copy.deepcopy(net.state_dict())
    net = revert_sync_batchnorm(net)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in net.modules())
    assert isinstance(net.layer1[0].bn1, nn.BatchNorm2d) and not net.bn1.weight.requires_grad
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_necks_pool_the_last_feature_map_and_return_a_one_tuple():
    feats = (torch.randn(2, 4, 5, 5), torch.randn(2, 8, 3, 3))
    (v2,) = MoCoV2Neck(in_channels=8, hid_channels=6, out_channels=3)(feats)
    (v1,) = LinearNeck(in_channels=8, out_channels=3)(feats)
    assert v2.shape == v1.shape == (2, 3)


def test_info_nce_matches_hand_computed_cross_entropy():
    pos = torch.tensor([[1.0], [0.0]])
    neg = torch.tensor([[0.0, 0.5], [1.0, -1.0]])
    t = 0.5
    # row 0 logits [2, 0, 1], row 1 logits [0, 2, -2]; the positive is index 0
    expected = (-2 + math.log(math.e**2 + 1 + math.e) + -0 + math.log(1 + math.e**2 + math.e**-2)) / 2
    assert info_nce_from_logits(pos, neg, t).item() == pytest.approx(expected, rel=1e-6)
    assert ContrastiveHead(temperature=t)(pos, neg)["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_batch_shuffle_then_unshuffle_is_the_identity_on_one_process():
    x = torch.arange(16.0).view(8, 2)
    shuffled, idx = batch_shuffle_ddp(x)
    assert sorted(shuffled[:, 0].tolist()) == x[:, 0].tolist()
    torch.testing.assert_close(batch_unshuffle_ddp(shuffled * 3, idx), x * 3)
    assert concat_all_gather(x) is x


def _two_rank_worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(rank)  # rank 0's permutation must win through the broadcast
    x = torch.arange(8.0).view(4, 2) + 100 * rank
    shuffled, idx = batch_shuffle_ddp(x)
    results[rank] = (concat_all_gather(shuffled), batch_unshuffle_ddp(shuffled, idx), x)
    dist.destroy_process_group()


def test_batch_shuffle_mixes_samples_across_two_ranks_and_unshuffles_to_each_ranks_own(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), results), nprocs=2)
    all0, back0, x0 = results[0]
    all1, _, _ = results[1]
    torch.testing.assert_close(all0, all1)  # both ranks used the same permutation
    assert sorted(all0[:, 0].tolist()) == sorted(torch.cat([x0, x0 + 100])[:, 0].tolist())
    for rank in (0, 1):
        torch.testing.assert_close(results[rank][1], results[rank][2])


def test_moco_key_encoder_follows_by_momentum_and_gets_no_gradient():
    torch.manual_seed(0)
    model = build(tiny_moco_cfg(momentum=0.9), ALGORITHMS).train()
    opt, views = sgd(model), two_views()
    loss = model(views, mode="train")["loss"]
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in model.encoder_k.parameters())
    keys_before = [p.clone() for p in model.encoder_k.parameters()]
    query = [p.detach().clone() for p in [*model.backbone.parameters(), *model.neck.parameters()]]
    model(views)
    for k_new, k_old, q in zip(model.encoder_k.parameters(), keys_before, query):
        torch.testing.assert_close(k_new, 0.9 * k_old + 0.1 * q)
    moved = [not torch.equal(new, old) for new, old in zip(model.encoder_k.parameters(), keys_before)]
    assert any(moved)


def test_moco_queue_pointer_advances_by_the_batch_and_wraps():
    torch.manual_seed(0)
    model = build(tiny_moco_cfg(), ALGORITHMS).train()
    views = two_views()
    queue = model.queue.clone()
    with torch.no_grad():
        model(views)
        assert int(model.queue_ptr) == 8
        assert not torch.equal(model.queue[:, :8], queue[:, :8])
        torch.testing.assert_close(model.queue[:, 8:], queue[:, 8:])
        torch.testing.assert_close(model.queue[:, :8].norm(dim=0), torch.ones(8))
        pointers = []
        for _ in range(3):
            model(views)
            pointers.append(int(model.queue_ptr))
    assert pointers == [16, 24, 0]


def test_moco_loss_falls_on_a_fixed_batch_once_the_queue_holds_its_keys():
    # the first loss is low (random queue, near-identical encoders); once queue_len/batch steps
    # have filled the queue with this batch's keys, training lowers the loss
    torch.manual_seed(0)
    model = build(tiny_moco_cfg(), ALGORITHMS).train()
    opt, views = sgd(model), two_views()
    losses = []
    for _ in range(17):
        loss = model(views)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[16] < 0.9 * losses[4]


def test_moco_rejects_a_queue_not_divisible_by_the_global_batch_before_training():
    model = build(tiny_moco_cfg(queue_len=30), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"model.queue_len=30 is not divisible by the global batch size 8"):
        model.check_data(num_samples=64, global_batch=8, num_views=2)
    model.check_data(num_samples=64, global_batch=10, num_views=2)


def test_moco_rejects_a_pipeline_with_the_wrong_number_of_views_before_training():
    model = build(tiny_moco_cfg(), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"MoCo needs 2 views per sample, the pipeline gives 3.*data.train.num_views"):
        model.check_data(num_samples=64, global_batch=8, num_views=3)


def test_a_neck_whose_input_width_does_not_match_the_backbone_is_named_at_build_time():
    with pytest.raises(ConfigError, match=r"model.neck.in_channels=32 does not match the backbone's output width 64"):
        build(tiny_moco_cfg(neck=dict(type="MoCoV2Neck", in_channels=32, hid_channels=16, out_channels=16)),
              ALGORITHMS)


def test_moco_extract_mode_returns_the_backbone_tuple():
    model = build(tiny_moco_cfg(), ALGORITHMS).eval()
    (feat,) = model(torch.randn(2, 3, 16, 16), mode="extract")
    assert feat.shape == (2, 64, 2, 2)


def test_unknown_neck_type_in_an_algorithm_config_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="NoSuchNeck"):
        build(tiny_moco_cfg(neck=dict(type="NoSuchNeck")), ALGORITHMS)


def test_split_bn_normalizes_each_slice_on_its_own_and_saves_as_plain_bn():
    from ssl_lib.models.backbones import SplitBatchNorm

    torch.manual_seed(0)
    bn = SplitBatchNorm(3, num_splits=2)
    x = torch.randn(8, 3, 4, 4) * 3 + 1
    y = bn(x)
    for j in range(2):  # slice j holds samples j, j+2, j+4, ...
        ref = torch.nn.functional.batch_norm(x[j::2], None, None, training=True, eps=bn.eps)
        assert torch.allclose(y[j::2], ref, atol=1e-5)
    assert set(bn.state_dict()) == set(torch.nn.BatchNorm2d(3).state_dict())
    bn.eval()
    assert torch.allclose(bn(x), torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, eps=bn.eps))


def test_resnet_with_split_bn_loads_into_torchvision_resnet18():
    import torchvision

    from ssl_lib.models.backbones import ResNet

    net = ResNet(depth=18, norm_cfg=dict(type="SplitBN", num_splits=2))
    net.train()(torch.randn(4, 3, 32, 32))
    tv = torchvision.models.resnet18()
    tv.fc = torch.nn.Identity()
    tv.load_state_dict(net.state_dict(), strict=True)
