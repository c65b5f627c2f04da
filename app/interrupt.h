// Ctrl-C handling: the first SIGINT/SIGTERM asks long work to stop at a safe point; the second
// exits at once.
#pragma once

namespace safnet {

void install_interrupt_handler();
bool interrupted();

}  // namespace safnet
