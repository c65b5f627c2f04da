// The training loop.
#include "app/trainer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "host/check.h"
#include "host/executor.h"
#include "host/file_io.h"
#include "app/devices.h"
#include "app/plan.h"
#include "app/evaluate.h"
#include "app/interrupt.h"
#include "app/progress.h"
#include "app/resident_train_set.h"
#include "app/stored_model.h"

namespace safnet {

std::string checkpoint_path(const std::string& out_dir) { return out_dir + "/checkpoint.safetensors"; }
std::string train_log_path(const std::string& out_dir) { return out_dir + "/train_log.jsonl"; }

namespace {

void save(const TrainConfig& cfg, const Dataset& data, Backend& backend, const ParamStore& params, Optimizer& opt,
          int epoch, std::int64_t step, const Metrics& test) {
  Checkpoint ck;
  ck.model = cfg.model;
  ck.params = params_to_host(backend, params);
  for (const auto& [name, t] : opt.slots()) ck.optim_slots[name] = backend.to_host(t);
  ck.optim_steps = opt.steps();
  ck.meta["dataset"] = cfg.dataset;
  if (!data.class_names.empty()) ck.meta["class_names"] = nlohmann::json(data.class_names).dump();
  ck.meta["epoch"] = std::to_string(epoch);
  ck.meta["step_in_epoch"] = std::to_string(step);
  ck.meta["top1"] = std::to_string(test.top1);
  ck.meta["top5"] = std::to_string(test.top5);
  ck.meta["config"] = nlohmann::json(cfg.flags).dump();
  save_checkpoint(checkpoint_path(cfg.out_dir), ck);
}

MetricSums read_sums(Backend& backend, const Tensor& sums) {
  MetricSums s;
  std::memcpy(&s, backend.to_host(sums).raw(), sizeof s);
  return s;
}

std::int64_t meta_int(const Checkpoint& ck, const char* key) {
  auto it = ck.meta.find(key);
  return it == ck.meta.end() ? 0 : std::stoll(it->second);
}

}  // namespace

TrainResult train(const TrainConfig& cfg, Backend& backend, const Dataset& train_set, const Dataset& test_set,
                  Checkpoint start) {
  TrainResult result;
  std::filesystem::create_directories(cfg.out_dir);
  ParamStore params = params_on(backend, start.params);
  Optimizer opt(cfg.optim);
  opt.slots() = start.optim_slots;
  opt.set_steps(start.optim_steps);
  int first_epoch = static_cast<int>(meta_int(start, "epoch"));
  const std::int64_t skip_steps = meta_int(start, "step_in_epoch");

  Loader loader(train_set, cfg.batch, true, cfg.seed, cfg.augment, default_normalization(cfg.dataset), false);
  // Where the backend can, in-memory images travel as bytes and are augmented and normalised on
  // the device.
  const bool device_augment = backend.augments_on_device() && train_set.files.empty();
  loader.set_raw(device_augment);
  // Where it fits, the whole set stays on the device and the loader only orders the epochs.
  const std::unique_ptr<ResidentTrainSet> resident = ResidentTrainSet::make(backend, train_set, cfg.quiet);
  // What a step reads back, in memory the device copies into without a wait of its own.
  Tensor loss_back = backend.host_buffer({1}, DType::f32()), sums_back = backend.host_buffer({sizeof(MetricSums)}, DType::u8());
  const EvalSet test = make_eval_set(test_set, default_normalization(cfg.dataset));
  Evaluator evaluator(cfg.model, cfg.batch, backend, NanLogits::as_torch, cfg.quiet);
  ModelPlans plans(cfg.model, PlanOptions{true, cfg.label_smoothing}, backend);
  const std::int64_t steps_per_epoch = loader.batches_per_epoch();
  Metrics test_metrics;
  const auto t0 = std::chrono::steady_clock::now();

  for (int epoch = first_epoch; epoch < cfg.epochs; ++epoch) {
    std::int64_t next_image = 0;  // resident: the first image of the next batch in the epoch's order
    if (resident)
      resident->start_epoch(loader.epoch_order(epoch), cfg.augment, cfg.seed, epoch);
    else
      loader.start_epoch(epoch);
    // Resident, a batch is only its size: its images and labels are gathered on the device.
    auto next = [&](Batch& b) {
      if (!resident) return loader.next(b);
      const std::int64_t n = std::min<std::int64_t>(cfg.batch, train_set.size() - next_image);
      if (n <= 0) return false;
      b.indices.assign(static_cast<std::size_t>(n), 0);
      next_image += n;
      return true;
    };
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs), steps_per_epoch);
    double loss_sum = 0;
    std::int64_t seen = 0, step = 0;
    Tensor epoch_sums = backend.zeros({sizeof(MetricSums)}, DType::u8());  // train accuracy, on the device
    Batch batch;
    const auto e0 = std::chrono::steady_clock::now();
    while (next(batch)) {
      if (epoch == first_epoch && step < skip_steps) {  // resuming mid-epoch: same order, skip done batches
        ++step;
        continue;
      }
      const int n = static_cast<int>(batch.indices.size());
      bool built = false;
      ModelPlan* plan = &plans.at(n, &built);
      if (built) {
        if (!cfg.quiet)
          std::fprintf(stderr, "training graph for batch %d: %zu nodes, activations %.1f MiB planned (%.1f MiB if none were reused)\n",
                       n, plan->graph.nodes().size(), plan->exec->peak_bytes() / 1048576.0,
                       plan->exec->unplanned_bytes() / 1048576.0);
      }
      plan->exec->bind_params(params);
      Tensor labels({n}, DType::i32());
      if (!resident) std::memcpy(labels.data<std::int32_t>(), batch.labels.data(), labels.nbytes());
      if (resident) {
        resident->batch(next_image - n, n, loader.lut(), plan->device_images(), plan->device_labels());
        plan->set_batch(plan->device_images(), plan->device_labels());
      } else if (device_augment) {
        std::vector<Backend::ImageDraw> draws;
        for (const AugmentDraw& d : batch.draws) draws.push_back({d.dy, d.dx, d.flip ? 1 : 0});
        backend.augment_batch(batch.pixels, draws, loader.lut(), plan->device_images());
        plan->set_batch(plan->device_images(), labels);
      } else {
        plan->set_batch(batch.images, labels);
      }
      backend.push_range("forward+backward");
      plan->exec->run();
      backend.pop_range();
      std::map<std::string, const Tensor*> grads;
      for (const auto& [name, v] : plan->grads) grads[name] = &plan->exec->get(v);
      const double epoch_pos = epoch + static_cast<double>(step) / static_cast<double>(steps_per_epoch);
      const float lr = schedule_lr(cfg.schedule, epoch_pos, cfg.epochs);
      backend.push_range("optimizer");
      opt.step(params, grads, lr, backend);
      backend.pop_range();

      backend.accumulate_metrics(plan->exec->get(plan->logits), plan->exec->get(plan->labels),
                                 plan->exec->get(plan->loss), NanLogits::as_torch, epoch_sums);
      // The loss (and, for the progress line, the accuracy so far) come back after one wait.
      backend.copy_to_host_async(plan->exec->get(plan->loss), loss_back);
      if (!cfg.quiet) backend.copy_to_host_async(epoch_sums, sums_back);
      backend.synchronize();
      const float loss = loss_back.data<float>()[0];
      if (!std::isfinite(loss)) fail("training diverged: loss is ", loss, " at epoch ", epoch + 1, " step ", step + 1);
      result.step_losses.push_back(loss);
      loss_sum += static_cast<double>(loss) * n;
      seen += n;
      ++step;
      if (!cfg.quiet) {
        MetricSums sums;
        std::memcpy(&sums, sums_back.raw(), sizeof sums);
        const std::int64_t correct = sums.top1;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
        char detail[160];
        std::snprintf(detail, sizeof detail, "loss %.4f acc %.2f%% lr %.4g %.0f img/s", loss_sum / seen,
                      100.0 * correct / seen, lr, secs > 0 ? seen / secs : 0.0);
        progress.update(step, detail);
      }
      if (interrupted()) {
        save(cfg, train_set, backend, params, opt, epoch, step, test_metrics);
        std::fprintf(stderr, "\nsafnet train: interrupted at epoch %d step %lld; checkpoint written to %s "
                     "(rerun with --resume to continue)\n", epoch + 1, static_cast<long long>(step),
                     checkpoint_path(cfg.out_dir).c_str());
        result.interrupted = true;
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return result;
      }
    }
    const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    backend.push_range("evaluate");
    test_metrics = evaluator.run(params, test);
    backend.pop_range();
    const double train_loss = seen ? loss_sum / seen : 0;
    const double train_acc = seen ? 100.0 * static_cast<double>(read_sums(backend, epoch_sums).top1) / seen : 0;
    if (!cfg.quiet) progress.finish();
    std::printf("epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f top1 %.2f%% top5 %.2f%%  %.1fs (%.0f img/s)\n",
                epoch + 1, cfg.epochs, train_loss, train_acc, test_metrics.loss, test_metrics.top1, test_metrics.top5,
                train_secs, train_secs > 0 ? seen / train_secs : 0.0);
    std::fflush(stdout);
    nlohmann::json log{{"epoch", epoch + 1},         {"lr", schedule_lr(cfg.schedule, epoch + 1.0, cfg.epochs)},
                       {"train_loss", train_loss},   {"train_top1", train_acc},
                       {"test_loss", test_metrics.loss}, {"test_top1", test_metrics.top1},
                       {"test_top5", test_metrics.top5}, {"seconds", train_secs},
                       {"images_per_second", train_secs > 0 ? seen / train_secs : 0.0}};
    append_line_durable(train_log_path(cfg.out_dir), log.dump());
    save(cfg, train_set, backend, params, opt, epoch + 1, 0, test_metrics);
    if (epoch == first_epoch) result.first_epoch_loss = train_loss;
    result.last_epoch_loss = train_loss;
    result.epochs_done = epoch + 1;
  }
  if (first_epoch >= cfg.epochs) test_metrics = evaluator.run(params, test);
  result.final_top1 = test_metrics.top1;
  result.final_top5 = test_metrics.top5;
  result.final_loss = test_metrics.loss;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!cfg.quiet) print_device_peak(backend);
  return result;
}

}  // namespace safnet
