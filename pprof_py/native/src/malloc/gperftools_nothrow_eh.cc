// The one piece of the allocator built with C++ exceptions (setup.py: a
// file ending in _eh.cc gets -fexceptions): nothrow operator new must call
// the program's new handler and, when the handler throws (std::bad_alloc,
// as gperftools' tests' handlers do), return NULL instead of letting the
// exception out of a noexcept function.  C cannot catch, so api.c calls
// this.
//
// The exception-handling runtime it refers to is weak, like the other
// libstdc++ symbols of the C++ layer (gperftools_extension.cc): a process
// that has a new handler has libstdc++ loaded, and a C program without it
// never gets here (api.c finds no std::get_new_handler).
asm(".weak __gxx_personality_v0\n"
    ".weak __cxa_begin_catch\n"
    ".weak __cxa_end_catch\n");

// 1: the handler returned (try the allocation again); 0: it threw.
extern "C" __attribute__((visibility("hidden"))) int pp_call_new_handler_nothrow(void (*handler)(void)) {
  try {
    handler();
    return 1;
  } catch (...) {
    return 0;
  }
}
