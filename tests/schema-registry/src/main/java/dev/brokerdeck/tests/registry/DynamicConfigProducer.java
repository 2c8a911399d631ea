package dev.brokerdeck.tests.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

/**
 * The registry's list of runtime-editable settings is normally generated at build time by a
 * Quarkus extension whose deployment half is not published on Maven Central; an empty list
 * only means no setting can be changed at run time, which the tests never do.
 */
@ApplicationScoped
public class DynamicConfigProducer {
  @Produces
  @ApplicationScoped
  DynamicConfigPropertyList dynamicConfigProperties() {
    return new DynamicConfigPropertyList(new java.util.ArrayList<>());
  }
}
