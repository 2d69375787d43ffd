import { Inject } from '@nestjs/common';
import { API_KEY_BACKEND } from '../backends/backend.interface.js';

/** Injects the module's resolved `ApiKeyBackend`. */
export const InjectApiKeyBackend = (): PropertyDecorator & ParameterDecorator => Inject(API_KEY_BACKEND);
