/** Integration tests: each file boots the app against its own database on a real Postgres. */
module.exports = {
  testEnvironment: '<rootDir>/test/support/node-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
    // ml-kmeans and its helpers, and request-filtering-agent, ship only ES modules; jest on Node 20 needs them as CommonJS.
    '^.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'node', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(ml-[a-z-]+|is-any-array|cheminfo-types|request-filtering-agent)/)'],
  // The decorators (type-graphql, TypeORM) need the metadata API, as at the app's entry: a unit test that
  // imports a module's public face (which may export a service) gets it too.
  setupFiles: ['reflect-metadata'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
};
