// Entry point. Loading Nest takes a moment (about 2 s on a small machine); a signal that
// arrives meanwhile finds nothing to stop yet and still ends the process with code 0
// (`docker stop` or Ctrl-C right after launch). Nest's own handlers take over later.
const exitEarly = (): never => process.exit(0);
process.once('SIGTERM', exitEarly);
process.once('SIGINT', exitEarly);

const { bootstrap, reportStartupError } = await import('./bootstrap.js');

bootstrap(() => {
  process.off('SIGTERM', exitEarly);
  process.off('SIGINT', exitEarly);
}).catch(reportStartupError);
