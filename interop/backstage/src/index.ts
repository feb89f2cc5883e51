// The Backstage backend of the interop test: the events backend (bus and HTTP ingress) and
// the recorder plugin. Start with `node dist/index.js --config app-config.yaml`.
import { createBackend } from '@backstage/backend-defaults';
import { recorderPlugin } from './recorder';

const backend = createBackend();
backend.add(import('@backstage/plugin-events-backend'));
backend.add(recorderPlugin);
backend.start();
