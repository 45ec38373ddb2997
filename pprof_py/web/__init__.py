"""`pprof --http=HOST:PORT`: a local web UI with Go pprof's views.

    server.py     the HTTP server and the cache of prepared reports
    views.py      one function per URL: request parameters -> report.Options
                  -> the existing renderers' view models -> a template
    templates/    the pages (Jinja2, autoescaped)
    static/       CSS and JavaScript, served from /ui/static/ (nothing from
                  the network)

See docs/web-ui.md for what each view shows.
"""
import sys
import threading

from pprof_py.errors import PprofError


def _stderr(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def serve(address, program, profiles, options, open_browser=True, say=_stderr):
    """Serve until Ctrl-C.  Diagnostics and the URL go to `say`."""
    from pprof_py.render.dot import has_display
    from pprof_py.web import registry
    from pprof_py.web.server import Server, WebUI, parse_address, start_query

    host, port = parse_address(address)
    ui = WebUI(program, profiles, options)
    for line in ui.notes:
        say(line)
    try:
        server = Server((host, port), ui)
    except OSError as exc:
        raise PprofError(f"--http={address}: cannot listen on {host}:{port}: {exc.strerror}") from None
    # From here on Ctrl-C is the normal way out, even before the first request.
    registration = None
    try:
        shown_host = server.server_address[0]
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        query = start_query(options)
        root = f"http://{shown_host}:{server.server_address[1]}"
        url = f"{root}/ui/" + (f"?{query}" if query else "")
        # `pprof --web` on the same files opens this server's pages.
        registration = registry.register(root, server.server_address[1], program, profiles, options)
        say(f"Serving web UI on {url}")
        if open_browser and has_display():
            import webbrowser
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:
        say("pprof: web UI stopped")
    finally:
        if registration is not None:
            registration.close()
        server.server_close()
