#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <ei.h>

int main(int argc, char** argv) {
  ei_init();
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
