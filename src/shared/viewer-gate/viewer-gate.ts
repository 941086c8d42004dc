import { Injectable } from '@nestjs/common';

export type LifecycleState = 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The one place that says whether viewers are served: ServerLifecycle sets the state,
 * the `/ws` gateway and the web-folder routes read it (503 unless running).
 */
@Injectable()
export class ViewerGate {
  private current: LifecycleState = 'stopped';

  get state(): LifecycleState {
    return this.current;
  }

  /** Viewer routes and `/ws` upgrades are served only while running. */
  get acceptsViewers(): boolean {
    return this.current === 'running';
  }

  /** Only {@link ServerLifecycle} calls this. */
  set(state: LifecycleState): void {
    this.current = state;
  }
}
