import { ServiceUnavailableException } from '@nestjs/common';

/** A publish refused because Redis cannot be reached: HTTP 503, and nothing changed. */
export class ClusterUnavailableError extends ServiceUnavailableException {
  constructor(detail: string) {
    super(`the cluster's Redis is unreachable (${detail}); nothing was published, try again shortly`);
    this.name = 'ClusterUnavailableError';
  }
}
