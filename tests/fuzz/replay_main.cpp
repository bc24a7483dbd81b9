// The replay driver of the fuzz targets in a normal build: runs each file
// named on the command line through the target's LLVMFuzzerTestOneInput.
// ctest runs it over the target's corpus; with libFuzzer (clang,
// GILMOUR_BUILD_FUZZERS=ON) this file is not linked and libFuzzer's main is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    ++n;
  }
  std::printf("replayed %d inputs\n", n);
  return 0;
}
