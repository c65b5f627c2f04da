// A live progress line on stderr (count, rate, ETA); one plain line per update when not a TTY.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace safnet {

class Progress {
 public:
  Progress(std::string label, std::int64_t total);
  // Redraws at most a few times a second (always when done == total).
  void update(std::int64_t done, const std::string& detail = "");
  void finish(const std::string& detail = "");
  // The total shrinks when work turns out not to be needed (a campaign cell that stopped early).
  void set_total(std::int64_t total) { total_ = total; }
  double elapsed_seconds() const;
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  std::string label_;
  std::int64_t total_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_;
  bool drawn_ = false;
};

}  // namespace safnet
