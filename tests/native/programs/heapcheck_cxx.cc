// Leak checker fixture in C++: a leak from a member function of a class
// template in a namespace (mangled _ZN4demo7FactoryIiE4makeEi...), so the
// report must show demangled names with their source lines.
//
//   heapcheck_cxx     leaks 3 objects of 48 bytes from demo::Factory<int>::make
#include <cstdio>
#include <cstring>

namespace demo {
struct Widget {
    long payload[6];
};

template <typename T>
struct Factory {
    __attribute__((noinline)) Widget *make(T seed) {
        Widget *w = new Widget;
        std::memset(w, static_cast<int>(seed), sizeof *w);
        return w;
    }
};
}  // namespace demo

static volatile long sink;

__attribute__((noinline)) static void leak_widgets() {
    demo::Factory<int> f;
    for (int i = 0; i < 3; i++) sink += f.make(i)->payload[1];
}

int main() {
    leak_widgets();
    std::printf("done\n");
    return 0;
}
