import { ServiceUnavailableException } from '@nestjs/common';

/**
 * A publish refused because Redis cannot be reached, or refused the script (`refused`:
 * out of memory, a version space used up): HTTP 503, and nothing changed.
 */
export class ClusterUnavailableError extends ServiceUnavailableException {
  constructor(detail: string, why: 'unreachable' | 'refused' = 'unreachable') {
    super(
      why === 'refused'
        ? `the cluster's Redis refused the publish (${detail}); nothing was published`
        : `the cluster's Redis is unreachable (${detail}); nothing was published, try again shortly`,
    );
    this.name = 'ClusterUnavailableError';
  }
}
