import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/** Where the OpenAPI description is served: the browsable page here, its JSON at `<path>-json`. */
export const API_DOCS_PATH = 'api/docs';

/**
 * Serves the OpenAPI description of stackcast's HTTP API at `GET /api/docs` (and
 * `/api/docs-json`). The standalone app calls it; an embedding app may call it on its own
 * app (it then describes the host's routes too). Call before `app.init()` / `app.listen()`.
 */
export function setupApiDocs(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('stackcast')
    .setDescription(
      'Publishes the latest live-stacked image to every phone around the telescope. Control routes need ' +
        '`Authorization: Bearer <CONTROL_TOKEN>` when a token is configured; without one they are accepted from loopback only.',
    )
    .addBearerAuth()
    .build();
  // Built on first request, so the host's own modules are all registered by then.
  SwaggerModule.setup(API_DOCS_PATH, app, () => SwaggerModule.createDocument(app, config));
}
