from pprof_py.cli import main

main()
