// SIGINT/SIGTERM to a flag polled by training and campaigns.
#include "app/interrupt.h"

#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include <atomic>

namespace safnet {

namespace {
std::atomic<int> g_signals{0};

extern "C" void on_signal(int) {
  if (g_signals.fetch_add(1) >= 1) _exit(130);
  const char msg[] = "\nsafnet: interrupted, finishing the current step and saving (Ctrl-C again to abort)\n";
  [[maybe_unused]] auto r = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_signals.load() > 0; }

}  // namespace safnet
