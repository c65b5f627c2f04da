// Progress line rendering.
#include "app/progress.h"

#include <unistd.h>

#include <cstdio>

namespace safnet {

Progress::Progress(std::string label, std::int64_t total)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_draw_(start_),
      tty_(::isatty(STDERR_FILENO) != 0) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

void Progress::update(std::int64_t done, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // Without a terminal a log file gets a line every 10 s instead of a redraw every 0.2 s.
  if (done < total_ && since < (tty_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  const double el = elapsed_seconds();
  const double rate = el > 0 ? static_cast<double>(done) / el : 0;
  const std::string eta = rate > 0 && done < total_ ? format_duration(static_cast<double>(total_ - done) / rate) : "-";
  std::fprintf(stderr, "%s%s %lld/%lld %s elapsed %s ETA %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), detail.c_str(),
               format_duration(el).c_str(), eta.c_str(), tty_ ? "" : "\n");
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish(const std::string& detail) {
  last_draw_ = {};
  update(total_, detail);
  if (tty_ && drawn_) std::fputc('\n', stderr);
}

}  // namespace safnet
